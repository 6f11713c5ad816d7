"""MoE Lab course: lesson text, quizzes, figures, progress storage and the pages' logic."""
