"""Lesson 2: The Router. Thin entry file: the lesson lives in lessons/course/page.py."""

from lessons.course.page import render_lesson

render_lesson(2)
