"""Glossary and references: a thin entry file; the page lives in lessons/course/page.py."""

from lessons.course.page import render_reference_page

render_reference_page()
