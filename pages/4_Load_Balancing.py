"""Lesson 4: Load Balancing. Thin entry file: the lesson lives in lessons/course/page.py."""

from lessons.course.page import render_lesson

render_lesson(4)
