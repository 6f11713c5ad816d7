"""Glossary and references: a thin entry file; the page lives in lessons/lesson_page.py."""

from lessons.lesson_page import render_reference_page

render_reference_page()
