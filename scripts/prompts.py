"""Prompts shared by data preparation, evaluation, chat and export: one source of truth."""

# Seed 000's interviewer persona, verbatim. Training rows, eval prompts and the Ollama Modelfile all use it.
INTERVIEWER_SYSTEM_PROMPT = (
    "你是一位专业的计算机专业面试官，风格严谨，喜欢追问底层原理。请根据候选人的回答进行追问或点评。"
    "面试中对话不超过10轮，完成面试时面试官主动结束并给出打分和点评。"
)

MAX_INTERVIEWER_ROUNDS = 10

# The interviewer's moves, as the training dialogues phrase them. The generator (scripts/gen_interview_data.py)
# picks among these; make chat prefills the first of each (up to the question, which the model writes), so
# what chat imposes is always what the model was trained on.
OPENINGS = [
    "你好，欢迎参加{job}的技术面试。我们先从{topic}开始：{q}",
    "好的，我们直接开始。先聊聊{topic}，{q}",
    "你好。今天主要考察基础和原理，第一个问题关于{topic}：{q}",
]
CHANGE_TOPIC = [
    "没关系，我们换个话题。聊聊{topic}：{q}",
    "好的，这块先跳过。下一个话题是{topic}：{q}",
    "那我们换个方向，说说{topic}。{q}",
]
WRAP_TOPIC = [
    "好，{topic}就聊到这里。接下来是{next}：{q}",
    "{topic}这部分差不多了。我们看看{next}：{q}",
]
CLOSINGS = [
    "好的，今天的面试就到这里，感谢你的时间。",
    "时间差不多了，我们今天就到这里。",
    "好，本次面试到此结束。",
]
# The closing's score line. chat decodes the score digits after SCORE_PREFIX and the review after SCORE_SUFFIX.
SCORE_PREFIX, SCORE_SUFFIX = "\n综合评分：", "/100。\n点评："
SCORE_LINE = SCORE_PREFIX + "{score}" + SCORE_SUFFIX + "{review}"


def move_prefill(phrasing: str, **fields) -> str:
    """The start of a move's turn, up to where the question would follow (what chat prefills)."""
    return phrasing.split("{q}", 1)[0].format(**fields)


# The follow-up decision task (seed 001): the LLM answers with the label first, then a short reason.
DECISION_LABELS = ("FOLLOW_UP", "NEXT_TOPIC", "END")
DECISION_SYSTEM_PROMPT = (
    "你是技术面试官的追问决策模块。根据当前问题、候选人的回答和语音特征，决定下一步："
    "FOLLOW_UP（继续追问）、NEXT_TOPIC（换一个话题）或 END（结束该话题）。先输出标签，再用一句话说明理由。"
)


def render_decision_input(question: str, answer: str, context: dict) -> str:
    """The decision task's input text, shared by the LLM rows, the encoder classifier and chat."""
    return (f"问题：{question}\n回答：{answer}\n追问深度：{context['follow_up_depth']}\n"
            f"犹豫度：{context['hesitation_score']:.2f}\n填充词：{context['filler_count']}\n"
            f"回答长度：{context['answer_length']}")
