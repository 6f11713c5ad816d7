"""Lesson 5: MoE at Scale. Thin entry file: the lesson lives in lessons/course/page.py."""

from lessons.course.page import render_lesson

render_lesson(5)
