"""Intent suggestions: the server's best three intents for a clip, computed from its draft.

`features` turns text into the terms both scorers use; `coldstart` scores a draft against each
intent's description and example phrasings (TF-IDF cosine, numpy only) for a deployment with no
annotations yet; `classifier` trains TF-IDF + logistic regression on the deployment's own
accepted annotations (scikit-learn, `asr` extra) and stores each version as plain arrays that
serving reads with numpy alone; `suggester.Suggester.suggest(draft)` is what the lease path calls.
"""
