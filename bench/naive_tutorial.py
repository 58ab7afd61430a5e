"""The baseline: how tutorials track one call (count with tiktoken, post, print).

Used by bench_single_call.py only; it is deliberately naive.
"""

import os
import sys

import requests
import tiktoken

prompt = sys.argv[1]
encoding = tiktoken.encoding_for_model("gpt-4o-mini")
prompt_tokens = len(encoding.encode(prompt))
response = requests.post(
    os.environ["OPENROUTER_BASE_URL"] + "/chat/completions",
    headers={"Authorization": "Bearer " + os.environ["OPENROUTER_API_KEY"]},
    json={
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": prompt}],
    },
    timeout=60,
)
body = response.json()
print(body["choices"][0]["message"]["content"])
usage = body["usage"]
cost = usage["prompt_tokens"] * 0.15e-6 + usage["completion_tokens"] * 0.6e-6
print(
    f"Input tokens: {usage['prompt_tokens']}, Output tokens:"
    f" {usage['completion_tokens']}, Cost: ${cost:.6f}",
    file=sys.stderr,
)
