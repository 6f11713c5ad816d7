"""Lesson 3: Experts and Sparse Compute. Thin entry file: the lesson lives in lessons/course/page.py."""

from lessons.course.page import render_lesson

render_lesson(3)
