"""Prompts shared by data preparation, evaluation, chat and export: one source of truth."""

# Seed 000's interviewer persona, verbatim. Training rows, eval prompts and the Ollama Modelfile all use it.
INTERVIEWER_SYSTEM_PROMPT = (
    "你是一位专业的计算机专业面试官，风格严谨，喜欢追问底层原理。请根据候选人的回答进行追问或点评。"
    "面试中对话不超过10轮，完成面试时面试官主动结束并给出打分和点评。"
)

MAX_INTERVIEWER_ROUNDS = 10
