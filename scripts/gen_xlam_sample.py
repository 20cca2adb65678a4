"""Generate an offline function-calling sample in the xlam-function-calling-60k schema.

    python -m scripts.gen_xlam_sample [--output data/raw/xlam_sample.json] [--rows 1200] [--seed 0]

The real dataset (Salesforce/xlam-function-calling-60k) is gated on the hub, so the pipeline ships
its own rows in the same schema: a JSON list of {"id", "query", "tools", "answers"} where tools and
answers are JSON *strings*, tool parameters are {name: {"description", "type", "default"}} and types
are xlam's ("str", "int, optional", "List[int]", "Dict[str, Any]", ...).

Rows come from a catalogue of tools (interview scheduling and hiring tools, plus the kinds of
utility API xlam covers). Each tool has query templates whose {placeholders} are its arguments, so
a query states exactly the arguments of its reference call; optional arguments appear only when a
template mentions them. A row offers the tools it needs plus 0-3 distractors, in shuffled order.
About a third of the rows are parallel calls (the same tool twice, or two tools).

About one row in eight needs no call (answers "[]", the reply in "response"), in English and Chinese:
  - unserved: a tool's query, but neither that tool nor any tool that could stand in for it is offered;
  - unrelated: a question no tool serves (general knowledge, chit-chat, writing);
  - missing arguments: the right tool is offered but the query lacks what its required parameters need,
    so the reply asks for them.
Same seed, same row count: byte-identical file.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from scripts.common import write_json
from scripts.prepare_xlam import CJK, ask_for_arguments_reply, convert_parameter, decline_reply

DEFAULT_OUTPUT = Path("data/raw/xlam_sample.json")

NAMES = ["Alice Chen", "Bob Li", "Carol Wang", "David Zhang", "Emma Liu", "Frank Zhao", "Grace Wu",
         "Henry Sun", "张伟", "李娜", "王芳", "刘洋", "陈静", "杨磊"]
CITIES = ["Paris", "Tokyo", "Berlin", "New York", "Shanghai", "Beijing", "London", "Sydney", "Toronto",
          "Singapore", "Shenzhen", "Hangzhou", "Madrid", "Seoul"]
TOPICS = ["Transformer", "LoRA", "Redis", "TCP", "MySQL index", "Kubernetes", "GC", "HashMap",
          "RLHF", "CUDA", "Kafka", "virtual memory"]
WORDS = ["racecar", "level", "openai", "interview", "banana", "madam", "python", "rotator", "kayak",
         "function", "noon", "engineer"]
SENTENCES = ["The quick brown fox jumps over the lazy dog", "Attention is all you need",
             "Hello world from the interview room", "Practice makes perfect",
             "To be or not to be", "Data beats opinions"]
LANGUAGES = ["French", "German", "Chinese", "Japanese", "Spanish", "Korean"]
CURRENCIES = ["USD", "EUR", "CNY", "JPY", "GBP", "AUD", "CAD"]
TICKERS = ["AAPL", "MSFT", "NVDA", "GOOGL", "AMZN", "TSLA", "BABA", "META"]
DEPARTMENTS = ["AI Lab", "Infrastructure", "Search", "Ads", "Data Platform", "Security"]
ROOMS = ["Everest", "K2", "Lhotse", "Makalu", "Cho Oyu"]
AREAS = ["machine learning", "distributed systems", "databases", "networking", "operating systems",
         "algorithms", "deep learning", "backend"]
CUISINES = ["Sichuan", "Italian", "Japanese", "Mexican", "Thai", "Cantonese"]
MOVIES = ["Inception", "Interstellar", "Spirited Away", "The Matrix", "Parasite", "Arrival"]
DECISIONS = ["hire", "no_hire", "strong_hire", "hold"]
DIFFICULTIES = ["easy", "medium", "hard"]


def _date(rng: random.Random) -> str:
    return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _time(rng: random.Random) -> str:
    return f"{rng.randint(8, 18):02d}:{rng.choice(['00', '15', '30', '45'])}"


def _ints(rng: random.Random, low: int = -20, high: int = 50) -> list[int]:
    return [rng.randint(low, high) for _ in range(rng.randint(3, 7))]


def _sorted_ints(rng: random.Random) -> list[int]:
    return sorted(_ints(rng, 0, 99))


def _point(rng: random.Random) -> list[float]:
    return [round(rng.uniform(-10, 10), 1) for _ in range(2)]


# value generators by kind; each returns a JSON value
VALUES: dict[str, Callable[[random.Random], object]] = {
    "name": lambda r: r.choice(NAMES),
    "city": lambda r: r.choice(CITIES),
    "date": _date,
    "time": _time,
    "morning": lambda r: f"{r.randint(8, 11):02d}:{r.choice(['00', '30'])}",
    "afternoon": lambda r: f"{r.randint(13, 18):02d}:{r.choice(['00', '30'])}",
    "datetime": lambda r: f"{_date(r)} {_time(r)}",
    "minutes": lambda r: r.choice([30, 45, 60, 90]),
    "interview_id": lambda r: f"INT-{r.randint(1000, 9999)}",
    "candidate_id": lambda r: f"C{r.randint(10000, 99999)}",
    "question_id": lambda r: f"Q{r.randint(100, 999)}",
    "score100": lambda r: r.randint(40, 98),
    "score5": lambda r: r.randint(1, 5),
    "level": lambda r: r.randint(1, 3),
    "count": lambda r: r.randint(3, 10),
    "topic": lambda r: r.choice(TOPICS),
    "area": lambda r: r.choice(AREAS),
    "difficulty": lambda r: r.choice(DIFFICULTIES),
    "email": lambda r: f"{r.choice(['alice', 'bob', 'hr', 'zhang.wei', 'li.na'])}@example.com",
    "link": lambda r: f"https://meet.example.com/{r.randint(100000, 999999)}",
    "room": lambda r: r.choice(ROOMS),
    "department": lambda r: r.choice(DEPARTMENTS),
    "decision": lambda r: r.choice(DECISIONS),
    "comment": lambda r: r.choice(["solid fundamentals", "needs deeper system design", "基础扎实",
                                   "对原理理解不够", "clear communication"]),
    "reason": lambda r: r.choice(["candidate request", "interviewer unavailable", "候选人时间冲突"]),
    "units": lambda r: r.choice(["metric", "imperial"]),
    "amount": lambda r: round(r.uniform(5, 5000), 2),
    "currency": lambda r: r.choice(CURRENCIES),
    "currencies": lambda r: r.sample(CURRENCIES, r.randint(2, 3)),
    "ticker": lambda r: r.choice(TICKERS),
    "weight": lambda r: round(r.uniform(45, 110), 1),
    "height": lambda r: round(r.uniform(1.5, 2.0), 2),
    "small_int": lambda r: r.randint(2, 500),
    "fib_n": lambda r: r.randint(5, 40),
    "ints": _ints,
    "sorted_ints": _sorted_ints,
    "floats": lambda r: [round(r.uniform(0, 100), 1) for _ in range(r.randint(3, 6))],
    "word": lambda r: r.choice(WORDS),
    "sentence": lambda r: r.choice(SENTENCES),
    "language": lambda r: r.choice(LANGUAGES),
    "rate": lambda r: round(r.choice([0.02, 0.03, 0.035, 0.04, 0.05, 0.065]), 3),
    "years": lambda r: r.randint(1, 30),
    "compounds": lambda r: r.choice([1, 4, 12]),
    "limit": lambda r: r.randint(3, 20),
    "point": _point,
    "bool": lambda r: r.random() < 0.5,
    "movie": lambda r: r.choice(MOVIES),
    "year": lambda r: r.randint(1990, 2025),
    "cuisine": lambda r: r.choice(CUISINES),
    "price": lambda r: r.randint(20, 300),
    "passengers": lambda r: r.randint(1, 4),
    "subject": lambda r: r.choice(["Interview confirmation", "Offer update", "面试安排确认"]),
    "body": lambda r: r.choice(["See you on Monday.", "Please bring your ID.", "期待与你交流。"]),
    "title": lambda r: r.choice(["Tech interview", "Hiring sync", "Panel debrief", "一面"]),
    "names": lambda r: r.sample(NAMES, r.randint(2, 3)),
    "metadata": lambda r: {"round": r.randint(1, 3), "remote": r.random() < 0.5},
    "celsius": lambda r: round(r.uniform(-20, 40), 1),
}


@dataclass(frozen=True)
class Param:
    name: str
    xlam_type: str  # as xlam writes it; ", optional" marks an optional parameter
    description: str
    kind: str  # key of VALUES
    default: object = ""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    params: tuple[Param, ...]
    templates: tuple[str, ...]  # {param} placeholders; every required param appears in each

    def xlam(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": {
            p.name: {"description": p.description, "type": p.xlam_type, "default": p.default}
            for p in self.params}}


def P(name: str, xlam_type: str, description: str, kind: str, default: object = "") -> Param:
    return Param(name, xlam_type, description, kind, default)


CATALOGUE: tuple[Tool, ...] = (
    # ---- interview scheduling and hiring
    Tool("schedule_interview", "Schedule a technical interview for a candidate.", (
        P("candidate", "str", "Full name of the candidate.", "name"),
        P("date", "str", "Interview date, YYYY-MM-DD.", "date"),
        P("time", "str", "Start time, 24-hour HH:MM.", "time"),
        P("duration_minutes", "int, optional", "Length of the interview in minutes.", "minutes", 60),
    ), ("Schedule an interview with {candidate} on {date} at {time}.",
        "Book a {duration_minutes}-minute interview for {candidate} on {date} starting {time}.",
        "帮我安排{candidate}在{date} {time}的技术面试。",
        "给{candidate}约一场{duration_minutes}分钟的面试，时间是{date} {time}。")),
    Tool("cancel_interview", "Cancel a scheduled interview.", (
        P("interview_id", "str", "The interview's identifier.", "interview_id"),
        P("reason", "str, optional", "Why the interview is cancelled.", "reason"),
    ), ("Cancel interview {interview_id}.", "Please cancel {interview_id} because of {reason}.",
        "取消面试{interview_id}，原因是{reason}。")),
    Tool("reschedule_interview", "Move an interview to a new date and time.", (
        P("interview_id", "str", "The interview's identifier.", "interview_id"),
        P("new_date", "str", "New date, YYYY-MM-DD.", "date"),
        P("new_time", "str", "New start time, HH:MM.", "time"),
    ), ("Move interview {interview_id} to {new_date} at {new_time}.",
        "把面试{interview_id}改到{new_date} {new_time}。")),
    Tool("get_interviewer_availability", "List an interviewer's free slots on a day.", (
        P("interviewer", "str", "Interviewer's name.", "name"),
        P("date", "str", "Day to check, YYYY-MM-DD.", "date"),
    ), ("When is {interviewer} free on {date}?", "查一下{interviewer}在{date}有哪些空闲时段。")),
    Tool("list_open_positions", "List open engineering positions.", (
        P("department", "str, optional", "Department to filter by.", "department"),
        P("city", "str, optional", "Office city to filter by.", "city"),
    ), ("What positions are open in {department}?", "List open roles in {city}.",
        "Show open positions in {department} located in {city}.", "{city}有哪些在招的岗位？")),
    Tool("get_candidate_profile", "Fetch a candidate's resume and interview history.", (
        P("candidate_id", "str", "Candidate identifier.", "candidate_id"),
    ), ("Pull up the profile of candidate {candidate_id}.", "看一下候选人{candidate_id}的简历。")),
    Tool("score_answer", "Record the score of one interview answer.", (
        P("question_id", "str", "Question identifier.", "question_id"),
        P("score", "int", "Score from 1 to 5.", "score5"),
        P("comment", "str, optional", "Short justification.", "comment"),
    ), ("Give question {question_id} a score of {score}.",
        "Score {question_id} as {score} with the note '{comment}'.",
        "问题{question_id}打{score}分，评语：{comment}。")),
    Tool("generate_interview_questions", "Generate interview questions on a topic.", (
        P("topic", "str", "Technical topic.", "topic"),
        P("difficulty", "str", "One of easy, medium, hard.", "difficulty"),
        P("count", "int, optional", "How many questions.", "count", 5),
    ), ("Give me some {difficulty} interview questions about {topic}.",
        "Generate {count} {difficulty} questions on {topic}.",
        "出{count}道关于{topic}的{difficulty}难度面试题。")),
    Tool("send_interview_invitation", "Email an interview invitation.", (
        P("email", "str", "Candidate's email address.", "email"),
        P("date", "str", "Interview date, YYYY-MM-DD.", "date"),
        P("time", "str", "Start time, HH:MM.", "time"),
        P("meeting_link", "str, optional", "Video meeting URL.", "link"),
    ), ("Send an invitation to {email} for {date} at {time}.",
        "Invite {email} to an interview on {date} {time}, link {meeting_link}.",
        "给{email}发面试邀请，时间{date} {time}。")),
    Tool("book_meeting_room", "Reserve a meeting room.", (
        P("room", "str", "Room name.", "room"),
        P("date", "str", "Date, YYYY-MM-DD.", "date"),
        P("start_time", "str", "Start, HH:MM.", "morning"),
        P("end_time", "str", "End, HH:MM.", "afternoon"),
    ), ("Book room {room} on {date} from {start_time} to {end_time}.",
        "预订{room}会议室，{date} {start_time}到{end_time}。")),
    Tool("record_interview_feedback", "Submit the final decision for a candidate.", (
        P("candidate_id", "str", "Candidate identifier.", "candidate_id"),
        P("decision", "str", "One of hire, no_hire, strong_hire, hold.", "decision"),
        P("score", "int", "Overall score out of 100.", "score100"),
    ), ("Record {decision} for candidate {candidate_id} with an overall score of {score}.",
        "候选人{candidate_id}的结论是{decision}，总分{score}。")),
    Tool("get_question_bank", "Fetch questions from the internal bank.", (
        P("area", "str", "Knowledge area.", "area"),
        P("level", "int, optional", "Follow-up depth, 1 to 3.", "level", 1),
    ), ("Fetch bank questions on {area}.", "Get level {level} questions about {area}.",
        "从题库里取{area}方向第{level}层的问题。")),
    Tool("create_calendar_event", "Create a calendar event.", (
        P("title", "str", "Event title.", "title"),
        P("start", "str", "Start, YYYY-MM-DD HH:MM.", "datetime"),
        P("attendees", "List[str], optional", "Names of the attendees.", "names"),
        P("metadata", "Dict[str, Any], optional", "Extra fields for the event.", "metadata"),
    ), ("Create an event '{title}' starting {start}.",
        "Create '{title}' at {start} with attendees {attendees}.",
        "Add '{title}' at {start}, metadata {metadata}.")),
    # ---- utilities of the kinds xlam covers
    Tool("get_weather", "Current weather for a city.", (
        P("city", "str", "City name.", "city"),
        P("units", "str, optional", "metric or imperial.", "units", "metric"),
    ), ("What's the weather in {city}?", "Weather in {city} in {units} units, please.", "{city}今天天气怎么样？")),
    Tool("convert_currency", "Convert an amount between currencies.", (
        P("amount", "float", "Amount to convert.", "amount"),
        P("from_currency", "str", "ISO code of the source currency.", "currency"),
        P("to_currency", "str", "ISO code of the target currency.", "currency"),
    ), ("Convert {amount} {from_currency} to {to_currency}.", "把{amount}{from_currency}换成{to_currency}是多少？")),
    Tool("get_stock_price", "Latest price of a stock.", (
        P("symbol", "str", "Ticker symbol.", "ticker"),
    ), ("What is {symbol} trading at?", "Get the latest price of {symbol}.")),
    Tool("calculate_bmi", "Body mass index from weight and height.", (
        P("weight_kg", "float", "Weight in kilograms.", "weight"),
        P("height_m", "float", "Height in meters.", "height"),
    ), ("My weight is {weight_kg} kg and height {height_m} m; what's my BMI?",)),
    Tool("is_prime", "Check whether a number is prime.", (
        P("n", "int", "The number.", "small_int"),
    ), ("Is {n} a prime number?", "{n}是质数吗？")),
    Tool("fibonacci", "The n-th Fibonacci number.", (
        P("n", "int", "Index in the sequence.", "fib_n"),
    ), ("What is Fibonacci number {n}?", "Compute Fibonacci number {n}.")),
    Tool("find_max_subarray_sum", "Maximum sum of a contiguous subarray.", (
        P("nums", "List[int]", "The input list.", "ints"),
    ), ("Find the maximum subarray sum of {nums}.", "求数组{nums}的最大子数组和。")),
    Tool("merge_sorted_lists", "Merge two sorted lists into one sorted list.", (
        P("list1", "List[int]", "First sorted list.", "sorted_ints"),
        P("list2", "List[int]", "Second sorted list.", "sorted_ints"),
    ), ("Merge the sorted lists {list1} and {list2}.",)),
    Tool("count_vowels", "Count the vowels in a text.", (
        P("text", "str", "Input text.", "sentence"),
    ), ("How many vowels are in '{text}'?",)),
    Tool("reverse_string", "Reverse a string.", (
        P("text", "str", "Input text.", "word"),
    ), ("Reverse the string '{text}'.", "把字符串'{text}'反转。")),
    Tool("is_palindrome", "Check whether a word is a palindrome.", (
        P("text", "str", "Input word.", "word"),
    ), ("Is '{text}' a palindrome?", "Check if {text} reads the same backwards.")),
    Tool("translate_text", "Translate text into another language.", (
        P("text", "str", "Text to translate.", "sentence"),
        P("target_language", "str", "Language to translate into.", "language"),
        P("source_language", "str, optional", "Language of the text.", "language", "auto"),
    ), ("Translate '{text}' into {target_language}.",
        "Translate '{text}' from {source_language} to {target_language}.")),
    Tool("search_flights", "Search flights between two cities.", (
        P("origin", "str", "Departure city.", "city"),
        P("destination", "str", "Arrival city.", "city"),
        P("date", "str", "Travel date, YYYY-MM-DD.", "date"),
        P("passengers", "int, optional", "Number of passengers.", "passengers", 1),
    ), ("Find flights from {origin} to {destination} on {date}.",
        "Search flights {origin} to {destination} on {date} for {passengers} passengers.",
        "查{date}从{origin}飞{destination}的航班。")),
    Tool("get_exchange_rates", "Exchange rates of several currencies against a base.", (
        P("base", "str", "Base currency code.", "currency"),
        P("symbols", "List[str]", "Currency codes to quote.", "currencies"),
    ), ("Exchange rates of {symbols} against {base}.",)),
    Tool("calculate_compound_interest", "Future value with compound interest.", (
        P("principal", "float", "Initial amount.", "amount"),
        P("rate", "float", "Annual rate as a decimal.", "rate"),
        P("years", "int", "Number of years.", "years"),
        P("compounds_per_year", "int, optional", "Compounding periods per year.", "compounds", 1),
    ), ("What will {principal} grow to at {rate} for {years} years?",
        "Compound {principal} at rate {rate}, {compounds_per_year} times a year, for {years} years.")),
    Tool("get_news_headlines", "Latest headlines on a topic.", (
        P("topic", "str", "News topic.", "topic"),
        P("limit", "int, optional", "Maximum number of headlines.", "limit", 10),
    ), ("Any news about {topic}?", "Top {limit} headlines on {topic}.")),
    Tool("word_frequency", "Frequency of each word in a text.", (
        P("text", "str", "Input text.", "sentence"),
    ), ("Count word frequencies in '{text}'.",)),
    Tool("calculate_distance", "Euclidean distance between two points.", (
        P("point1", "List[float]", "First point.", "point"),
        P("point2", "List[float]", "Second point.", "point"),
    ), ("Distance between {point1} and {point2}?",)),
    Tool("set_reminder", "Set a reminder.", (
        P("message", "str", "What to be reminded of.", "title"),
        P("remind_at", "str", "When, YYYY-MM-DD HH:MM.", "datetime"),
        P("repeat", "bool, optional", "Repeat daily.", "bool", False),
    ), ("Remind me about '{message}' at {remind_at}.", "Set a reminder '{message}' at {remind_at}, repeat: {repeat}.",
        "{remind_at}提醒我'{message}'。")),
    Tool("get_movie_details", "Details of a movie.", (
        P("title", "str", "Movie title.", "movie"),
        P("year", "int, optional", "Release year.", "year"),
    ), ("Tell me about the movie {title}.", "Details for {title} ({year}).")),
    Tool("find_restaurants", "Find restaurants in a city.", (
        P("city", "str", "City.", "city"),
        P("cuisine", "str", "Kind of food.", "cuisine"),
        P("max_price", "int, optional", "Maximum price per person.", "price"),
    ), ("Find {cuisine} restaurants in {city}.", "{cuisine} food in {city} under {max_price} per person?")),
    Tool("get_time_zone", "Time zone of a city.", (
        P("city", "str", "City.", "city"),
    ), ("What time zone is {city} in?", "{city}在哪个时区？")),
    Tool("send_email", "Send an email.", (
        P("to", "str", "Recipient address.", "email"),
        P("subject", "str", "Subject line.", "subject"),
        P("body", "str", "Message body.", "body"),
    ), ("Email {to} with subject '{subject}' saying '{body}'.",)),
    Tool("average", "Arithmetic mean of numbers.", (
        P("numbers", "List[float]", "The numbers.", "floats"),
    ), ("What's the average of {numbers}?", "计算{numbers}的平均值。")),
    Tool("celsius_to_fahrenheit", "Convert Celsius to Fahrenheit.", (
        P("celsius", "float", "Temperature in Celsius.", "celsius"),
    ), ("Convert {celsius} C to Fahrenheit.", "{celsius}摄氏度是多少华氏度？")),
)

# ---- rows that need no call
# Tools that can stand in for one another: an "unserved" row offers none of the group of the tool it needs.
STAND_INS = (
    {"schedule_interview", "reschedule_interview", "create_calendar_event", "book_meeting_room", "set_reminder",
     "send_interview_invitation", "cancel_interview"},
    {"convert_currency", "get_exchange_rates"},
    {"send_email", "send_interview_invitation"},
    {"is_palindrome", "reverse_string"},
    {"count_vowels", "word_frequency"},
    {"get_question_bank", "generate_interview_questions"},
    {"score_answer", "record_interview_feedback"},
    {"average", "find_max_subarray_sum"},
)

# Requests no tool of the catalogue serves.
UNRELATED = (
    "What is the capital of Australia?", "Explain the difference between TCP and UDP.",
    "Write a haiku about autumn.", "Who wrote Pride and Prejudice?", "How do I make a good cup of coffee?",
    "Tell me a joke about programmers.", "What does LoRA stand for in machine learning?",
    "Summarise the plot of Hamlet in two sentences.", "Hi! How are you today?",
    "What is the difference between a process and a thread?", "Recommend a good book on distributed systems.",
    "Why is the sky blue?",
    "你好，你是谁？", "解释一下什么是梯度下降。", "写一首关于秋天的短诗。", "Redis 为什么这么快？",
    "给我讲个笑话吧。", "TCP 三次握手的过程是什么？", "推荐几本学习操作系统的书。", "今天是星期几？",
)

# Requests for a tool's action that leave out what its required parameters need: the reply asks for them.
VAGUE = {
    "schedule_interview": ("Schedule an interview for me.", "帮我安排一场技术面试。"),
    "cancel_interview": ("Please cancel my interview.", "帮我取消面试。"),
    "reschedule_interview": ("I need to move my interview to another day.", "面试要改期。"),
    "get_interviewer_availability": ("Is the interviewer free?", "面试官什么时候有空？"),
    "score_answer": ("Score that answer for me.", "给这道题打个分。"),
    "send_interview_invitation": ("Send the candidate an interview invitation.", "给候选人发面试邀请。"),
    "book_meeting_room": ("Book a meeting room.", "帮我订个会议室。"),
    "convert_currency": ("Convert some money for me.", "帮我换算一下汇率。"),
    "get_weather": ("What's the weather like?", "天气怎么样？"),
    "search_flights": ("Find me a flight.", "帮我查一下航班。"),
    "send_email": ("Send an email for me.", "帮我发封邮件。"),
    "translate_text": ("Translate this for me.", "帮我翻译一下。"),
    "calculate_bmi": ("What's my BMI?", "算一下我的 BMI。"),
    "find_restaurants": ("Find me a restaurant.", "附近有什么好吃的餐厅？"),
    "get_stock_price": ("What's the stock price?", "股价现在多少？"),
    "is_prime": ("Is this number prime?", "这个数是质数吗？"),
}
NO_CALL_SHARE = (0.075, 0.04, 0.035)  # unserved, unrelated, missing arguments: 15% of the rows in all


PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render(value: object) -> str:
    """How a value is written inside a query: lists and objects as JSON, the rest as text."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value).lower() if isinstance(value, bool) else str(value)


def make_call(tool: Tool, rng: random.Random, chinese: bool | None = None) -> tuple[str, dict, bool]:
    """(query sentence, call, whether the sentence is Chinese) for a tool; `chinese` picks the
    template language when the tool has one in that language."""
    templates = list(tool.templates)
    if chinese is not None:
        same = [t for t in templates if bool(CJK.search(t)) == chinese]
        templates = same or templates
    template = rng.choice(templates)
    params = {p.name: p for p in tool.params}
    arguments: dict = {}
    for name in PLACEHOLDER.findall(template):
        if name not in arguments:
            arguments[name] = VALUES[params[name].kind](rng)
    # placeholders are filled in the order of the tool's parameters, like a real call
    arguments = {p.name: arguments[p.name] for p in tool.params if p.name in arguments}
    query = PLACEHOLDER.sub(lambda m: render(arguments[m.group(1)]), template)
    return query, {"name": tool.name, "arguments": arguments}, bool(CJK.search(template))


def row(row_id: int, query: str, calls: list[dict], offered: list[Tool], response: str | None = None) -> dict:
    out = {"id": row_id, "query": query, "answers": json.dumps(calls, ensure_ascii=False),
           "tools": json.dumps([t.xlam() for t in offered], ensure_ascii=False)}
    return {**out, "response": response} if response is not None else out


def no_call_row(row_id: int, kind: int, rng: random.Random) -> dict:
    """A row whose right answer is text: kind 0 unserved, 1 unrelated, 2 missing arguments."""
    if kind == 2:
        name = rng.choice(sorted(VAGUE))
        tool = next(t for t in CATALOGUE if t.name == name)
        query = rng.choice(VAGUE[tool.name])
        others = rng.sample([t for t in CATALOGUE if t is not tool], rng.randint(0, 2))
        offered = [tool] + others
        rng.shuffle(offered)
        required = [name for name, spec in tool.xlam()["parameters"].items()
                    if convert_parameter(name, spec, name)[1]]  # the converter's rule for "required"
        return row(row_id, query, [], offered, ask_for_arguments_reply(query, tool.name, required))
    if kind == 0:
        needed = rng.choice(CATALOGUE)
        query, _, _ = make_call(needed, rng)
        group = set().union(*(g for g in STAND_INS if needed.name in g), {needed.name})
        pool = [t for t in CATALOGUE if t.name not in group]
    else:
        query = rng.choice(UNRELATED)
        pool = list(CATALOGUE)
    offered = rng.sample(pool, rng.randint(1, 4))
    return row(row_id, query, [], offered, decline_reply(query, [t.name for t in offered]))


def make_row(row_id: int, rng: random.Random) -> dict:
    shape = rng.random()
    if shape < sum(NO_CALL_SHARE):
        kind = 0 if shape < NO_CALL_SHARE[0] else 1 if shape < NO_CALL_SHARE[0] + NO_CALL_SHARE[1] else 2
        return no_call_row(row_id, kind, rng)
    shape = rng.random()
    first = rng.choice(CATALOGUE)
    query, call, chinese = make_call(first, rng)
    calls, needed = [call], [first]
    if shape < 0.18:  # the same tool twice, as xlam's "X for A and for B"
        second_query, second, _ = make_call(first, rng, chinese)
        if second != call:
            calls.append(second)
            query += ("另外，" if chinese else " Also, ") + second_query
    elif shape < 0.33:  # two different tools in one request
        other = rng.choice([t for t in CATALOGUE if t.name != first.name])
        second_query, second, _ = make_call(other, rng, chinese)
        calls.append(second)
        needed.append(other)
        query += ("然后，" if chinese else " Then, ") + second_query
    distractors = rng.sample([t for t in CATALOGUE if t not in needed], rng.randint(0, 3))
    offered = needed + distractors
    rng.shuffle(offered)
    return row(row_id, query, calls, offered)


def generate(rows: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [make_row(i, rng) for i in range(rows)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--rows", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = generate(args.rows, args.seed)
    write_json(args.output, rows)
    calls = [len(json.loads(r["answers"])) for r in rows]
    print(f"gen_xlam_sample: {len(rows)} rows from {len(CATALOGUE)} tools ({sum(n > 1 for n in calls)} with "
          f"parallel calls, {calls.count(0)} needing no call) -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
