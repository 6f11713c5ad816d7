"""Lesson 3: Experts and Sparse Compute. Thin entry file: the lesson lives in lessons/lesson_page.py."""

from lessons.lesson_page import render_lesson

render_lesson(3)
