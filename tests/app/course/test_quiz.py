"""Quizzes: the TOML format, grading by hand-worked cases, and the flow that completes a lesson."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from streamlit.testing.v1 import AppTest

from lessons.course.quiz import (
    EMPTY_NOTICE,
    QuizFormatError,
    answer_text,
    format_number,
    grade,
    is_correct,
    load_quiz,
    parse_quiz,
    stated_decimals,
)
from lessons.course.text import LESSONS
from tests.app.conftest import new_app, sidebar_text, texts

SAMPLE = {
    "title": "Sample",
    "questions": [
        {"id": "a", "kind": "single", "prompt": "p", "choices": ["x", "y", "z"], "answer": 2,
         "explanation": "e"},
        {"id": "b", "kind": "multi", "prompt": "p", "choices": ["x", "y", "z"], "answer": [0, 2]},
        {"id": "c", "kind": "truefalse", "prompt": "p", "answer": False},
        {"id": "d", "kind": "number", "prompt": "p", "answer": 12.9, "tolerance": 0.05},
        {"id": "e", "kind": "number", "prompt": "p", "answer": 0, "tolerance": 0.01},
    ],
}


def test_parse_defaults_and_kinds() -> None:
    quiz = parse_quiz(SAMPLE)
    assert quiz.pass_fraction == 0.8
    assert [q.kind for q in quiz.questions] == ["single", "multi", "truefalse", "number", "number"]


@pytest.mark.parametrize(("qid", "given", "expected"), [
    ("a", 2, True), ("a", 1, False), ("a", None, False),
    ("b", [2, 0], True), ("b", [0], False), ("b", [0, 1, 2], False), ("b", [], False),
    ("c", False, True), ("c", True, False), ("c", None, False),
    ("d", 12.9, True), ("d", 13.5, True), ("d", 12.26, True), ("d", 13.6, False), ("d", 12.2, False),
    ("d", float("nan"), False), ("d", "12.9", True),
    ("e", 0.0, True), ("e", 0.005, True), ("e", 0.02, False),
])
def test_is_correct(qid: str, given, expected: bool) -> None:
    # 12.9 with 5 % relative tolerance accepts [12.255, 13.545]; an answer of 0 uses 0.01 absolute.
    question = {q.id: q for q in parse_quiz(SAMPLE).questions}[qid]
    assert is_correct(question, given) is expected


@pytest.mark.parametrize(("prompt", "decimals"), [
    ("How many? Give a whole number.", 0), ("Give two decimal places.", 2),
    ("Answer as a decimal with two decimal places.", 2), ("Give one decimal place.", 1),
    ("Give 3 decimal places.", 3), ("Give five decimal places.", 5), ("How many experts?", None),
])
def test_stated_decimals_reads_the_prompt(prompt: str, decimals) -> None:
    assert stated_decimals(prompt) == decimals


@pytest.mark.parametrize(("value", "decimals", "shown"), [
    (10518300, None, "10,518,300"), (1.05183e7, 0, "10,518,300"), (0.25, None, "0.25"),
    (0.25, 3, "0.250"), (12.58, 2, "12.58"), (0.00625, 5, "0.00625"), (1e-5, None, "0.00001"),
    (356.0, 0, "356"), (1234567.891, None, "1,234,568"), (0.0, None, "0"), (-3.5, None, "-3.5"),
])
def test_numbers_are_written_for_people(value: float, decimals, shown: str) -> None:
    assert format_number(value, decimals) == shown


ROUNDED = {"questions": [
    {"id": "two", "kind": "number", "prompt": "Give two decimal places.", "answer": 12.58},
    {"id": "whole", "kind": "number", "prompt": "Give a whole number.", "answer": 356},
    {"id": "loose", "kind": "number", "prompt": "Give a whole number.", "answer": 100, "tolerance": 0.05},
]}


@pytest.mark.parametrize(("qid", "given", "expected"), [
    # Anything that rounds to 12.58 at two decimals, ties included: [12.575, 12.585].
    ("two", 12.58, True), ("two", 12.575, True), ("two", 12.585, True), ("two", 12.5849, True),
    ("two", 12.5749, False), ("two", 12.5851, False), ("two", 12.6, False),
    ("whole", 356, True), ("whole", 355.5, True), ("whole", 356.49, True), ("whole", 356.6, False),
    ("whole", 355, False),
    # A wider tolerance written in the file still counts: 5 % of 100.
    ("loose", 104.9, True), ("loose", 105.1, False),
])
def test_numbers_accept_the_rounding_the_prompt_states(qid: str, given: float, expected: bool) -> None:
    question = {q.id: q for q in parse_quiz(ROUNDED).questions}[qid]
    assert is_correct(question, given) is expected


def test_grade_counts_unanswered_as_wrong_and_passes_at_80_percent() -> None:
    quiz = parse_quiz(SAMPLE)
    four_of_five = grade(quiz, {"a": 2, "b": [0, 2], "c": False, "d": 12.9})
    assert four_of_five.score == pytest.approx(0.8) and four_of_five.passed
    three = grade(quiz, {"a": 2, "b": [0, 2], "c": False})
    assert three.score == pytest.approx(0.6) and not three.passed


@pytest.mark.parametrize("bad", [
    {"questions": []},
    {"questions": [{"id": "a", "kind": "essay", "prompt": "p", "answer": 1}]},
    {"questions": [{"id": "a", "kind": "single", "prompt": "p", "choices": ["x", "y"], "answer": 2}]},
    {"questions": [{"id": "a", "kind": "multi", "prompt": "p", "choices": ["x", "y"], "answer": 1}]},
    {"questions": [{"id": "a", "kind": "truefalse", "prompt": "p", "answer": "yes"}]},
    {"questions": [{"id": "a", "kind": "number", "prompt": "p", "answer": True}]},
    {"questions": [{"id": "a", "kind": "truefalse", "prompt": "p", "answer": True},
                   {"id": "a", "kind": "truefalse", "prompt": "q", "answer": True}]},
])
def test_bad_quiz_files_are_refused(bad) -> None:
    with pytest.raises(QuizFormatError):
        parse_quiz(bad)


@pytest.mark.parametrize("number", [info.number for info in LESSONS])
def test_shipped_quizzes_follow_the_format(number: int) -> None:
    quiz = load_quiz(number)
    assert quiz is not None, f"lessons/content/lesson{number}/quiz.toml is missing"
    assert len(quiz.questions) >= 5
    assert len({q.kind for q in quiz.questions}) >= 2  # mixed kinds
    assert all(q.explanation for q in quiz.questions)
    for q in quiz.questions:
        if q.kind == "number":  # the learner is told how to round, and the answer is shown that way
            assert q.decimals is not None, f"{q.id}: say how to round (e.g. 'Give a whole number.')"
            assert "e" not in answer_text(q).lower(), answer_text(q)
            assert is_correct(q, float(answer_text(q).replace(",", ""))), q.id


# --- the flow in the app ---------------------------------------------------------------------


def fill_quiz(at: AppTest, number: int, correct: bool) -> None:
    """Answer every question of lesson `number` (right or wrong) through its widgets."""
    quiz = load_quiz(number)
    attempt = at.session_state[f"quiz{number}_attempt"]
    for q in quiz.questions:
        key = f"quiz{number}_{attempt}_{q.id}"
        if q.kind == "single":
            index = q.answer if correct else (q.answer + 1) % len(q.choices)
            at.radio(key=key).set_value(index)
        elif q.kind == "multi":
            for i in range(len(q.choices)):
                at.checkbox(key=f"{key}_{i}").set_value((i in q.answer) == correct)
        elif q.kind == "truefalse":
            at.radio(key=key).set_value("True" if q.answer == correct else "False")
        else:
            at.number_input(key=key).set_value(q.answer if correct else q.answer * 3 + 7)
    at.button(key=f"FormSubmitter:quiz{number}_form_{attempt}-Submit answers").click().run()


def recorded(db_path) -> dict[int, tuple[int, float, bool]]:
    """lesson -> (attempts, best score, passed) as stored (this test's database holds one learner)."""
    if not db_path.exists():
        return {}
    with closing(sqlite3.connect(db_path)) as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
        if "quiz_results" not in tables:
            return {}
        rows = db.execute("select lesson, attempts, best_score, passed from quiz_results").fetchall()
    return {lesson: (attempts, best, bool(passed)) for lesson, attempts, best, passed in rows}


def submit(at: AppTest, number: int) -> None:
    attempt = at.session_state[f"quiz{number}_attempt"]
    at.button(key=f"FormSubmitter:quiz{number}_form_{attempt}-Submit answers").click().run()


def lesson1(query: dict[str, str]) -> AppTest:
    at = new_app(query).run()
    return at.switch_page(LESSONS[0].page).run()


def test_passing_the_quiz_completes_the_lesson_and_survives_a_fresh_session(db_path) -> None:
    at = lesson1({"learner": "quinn"})
    fill_quiz(at, 1, correct=True)
    assert not at.exception
    assert "Lesson passed" in texts(at)
    assert "1 / 5 completed" in sidebar_text(at)
    assert sidebar_text(at).count("1 / 5") == 1
    # A brand-new session (another device, after a restart) on the same database, through the
    # learner's resume link; the name alone opens nothing.
    token = at.session_state["learner_current"].key.removeprefix("browser:")
    fresh = new_app({"resume": token}).run()
    assert "1 / 5 completed" in texts(fresh)
    assert "Completed" in texts(fresh)
    other = new_app({"learner": "quinn"}).run()
    assert "0 / 5 completed" in texts(other)


def test_failing_then_retrying_keeps_the_best_score(db_path) -> None:
    at = lesson1({"learner": "rae"})
    fill_quiz(at, 1, correct=False)
    assert "You need 80%" in texts(at) and "0 / 5 completed" in sidebar_text(at)
    at.button(key="quiz1_retry_0").click().run()
    assert at.session_state["quiz1_attempt"] == 1 and "You scored" not in texts(at)
    fill_quiz(at, 1, correct=True)
    assert "1 / 5 completed" in sidebar_text(at)
    at.button(key="quiz1_retry_1").click().run()
    fill_quiz(at, 1, correct=False)  # a worse attempt later never un-completes the lesson
    assert "1 / 5 completed" in sidebar_text(at)
    assert recorded(db_path)[1] == (3, 1.0, True)


def test_an_empty_submission_is_refused_and_not_recorded(db_path) -> None:
    at = lesson1({"learner": "ema"})
    submit(at, 1)
    assert not at.exception
    assert EMPTY_NOTICE in texts(at)
    assert "You scored" not in texts(at) and "Not quite" not in texts(at)
    assert recorded(db_path) == {}  # no attempt counted
    fill_quiz(at, 1, correct=True)  # a real submission afterwards is graded, and the notice goes
    assert "Lesson passed" in texts(at) and EMPTY_NOTICE not in texts(at)
    assert recorded(db_path)[1][0] == 1


def test_answers_are_shown_only_after_passing_or_on_request(db_path) -> None:
    quiz = load_quiz(1)
    at = lesson1({"learner": "fay"})
    fill_quiz(at, 1, correct=False)
    shown = texts(at)
    assert "You need 80%" in shown and "Not quite" in shown
    assert "the answer is" not in shown
    assert not [q for q in quiz.questions if q.explanation in shown]  # explanations give answers away
    at.button(key="quiz1_reveal_0").click().run()
    shown = texts(at)
    assert not at.exception
    for q in quiz.questions:
        assert f"the answer is {answer_text(q)}" in shown and q.explanation in shown
    assert "quiz1_reveal_0" not in [b.key for b in at.button]  # shown: nothing left to ask
    # A new attempt hides them again until it is graded.
    at.button(key="quiz1_retry_0").click().run()
    assert "the answer is" not in texts(at)
    fill_quiz(at, 1, correct=True)  # passing shows every explanation without asking
    shown = texts(at)
    assert "Lesson passed" in shown and all(q.explanation in shown for q in quiz.questions)
    assert not [b for b in at.button if (b.key or "").startswith("quiz1_reveal")]
