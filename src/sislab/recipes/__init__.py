"""The official training recipes: per method and dataset, each hyperparameter the official code
trains with, its source (file:line of the official repository, or the paper's section), and the
paper's value where its text differs. ``train.recipe`` picks ``official``, ``paper`` or ``none``.
"""
