"""Prompts shared by data preparation, evaluation, chat and export: one source of truth."""

# Seed 000's interviewer persona, verbatim. Training rows, eval prompts and the Ollama Modelfile all use it.
INTERVIEWER_SYSTEM_PROMPT = (
    "你是一位专业的计算机专业面试官，风格严谨，喜欢追问底层原理。请根据候选人的回答进行追问或点评。"
    "面试中对话不超过10轮，完成面试时面试官主动结束并给出打分和点评。"
)

MAX_INTERVIEWER_ROUNDS = 10

# The follow-up decision task (seed 001): the LLM answers with the label first, then a short reason.
DECISION_SYSTEM_PROMPT = (
    "你是技术面试官的追问决策模块。根据当前问题、候选人的回答和语音特征，决定下一步："
    "FOLLOW_UP（继续追问）、NEXT_TOPIC（换一个话题）或 END（结束该话题）。先输出标签，再用一句话说明理由。"
)


def render_decision_input(question: str, answer: str, context: dict) -> str:
    """The decision task's input text, shared by the LLM rows, the encoder classifier and chat."""
    return (f"问题：{question}\n回答：{answer}\n追问深度：{context['follow_up_depth']}\n"
            f"犹豫度：{context['hesitation_score']:.2f}\n填充词：{context['filler_count']}\n"
            f"回答长度：{context['answer_length']}")
