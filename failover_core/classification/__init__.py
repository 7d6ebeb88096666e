"""Classification: what a failure says about the model that raised it.

``classifier.py`` holds the rules (their order, the evidence each reads, the tie-breaks)
and the public ``classify``/``status_of``; the flow acts on its answer.
"""
