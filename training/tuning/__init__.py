"""Validation tuning: the knobs that matter, chosen per shop on the validation window, then refitted.

Protocol: the job's own (retrieval fit, a ranker that learns from the window after it, retrieval refitted
with that ranker, the page scored on the window after that), one window earlier. Of the training window
(every event before the validation window), the last part, as long as the validation window, gives the
ranker's labels: each trial fits retrieval on what precedes that part and learns its LambdaRank ranker
from the part's shoppers (some of them stop the boosting), refits retrieval on the whole training window
and scores, for the validation window's shoppers, NDCG@10 of the page ``merchandiser.reranking`` builds
(the one serving builds, as ``training.evaluation`` scores it), relevant items being what they touched in
the window minus what they had bought. The test window is never read here, and no ranker sees the labels
its page is scored on.

Stages, each searched by Optuna's TPE (fixed seed), each starting from the current values (its first
trial), so the chosen values never score below the defaults on validation:

1. ``retrieval``: event-type weights (the types the window holds), recency half-life, ALS factors,
   regularisation and confidence (alpha), the co-occurrence window; each trial refits retrieval, so it
   gets the fewest trials;
2. ``ranker``: the source shares of the candidate merge and the ranker's leaves, rounds and learning
   rate, on the best retrieval fit (the users' states are kept: no refit, no fold-in);
3. ``page``: the category cap and the discovery share, on the best ranker's cached scores (no ranking).

Before them the simple lists (``training.simple_lists``: recent popularity and trending) are tuned on the
same shoppers; their settings feed the ``recent_popularity`` and ``trending`` sources. After them, if the
pipeline's page loses to the best anchor the model can serve (those lists, or a personal item-item anchor,
item-kNN or RP3beta, with the settings ``training.anchors`` chose on the same window), the blends of that
anchor into the ranker's order (and the anchor alone) are tried on the same shoppers, and the best is what
the model serves (``fallback_to_anchor``; a personal anchor's weights go into the model's signals).
Last, on the same pages, the long-tail correction's strength (``training.tuning.long_tail``): the largest
that keeps NDCG@10 within 2% of none while coverage@20 and the long-tail share rise, else 0
(``long_tail_correction``).

Budget (``--tuning-trials``, ``--tuning-seconds``; either 0 turns tuning off): the trials are shared by the
stages as ``STAGE_TRIAL_SHARES`` (each simple list gets a quarter of them, at least 4); the CPU seconds of
the job's process (a dedicated training instance's wall time; on a shared machine the same search
whatever the load) are shared as ``STAGE_TIME_SHARES``, a stage getting its share of the budget or, if the
stages before it left time, its share of what is left, whichever is more. A trial starts only if the
stage's trials so far, on average, say it ends within the stage's time; every stage runs its first trial
(a later stage's first trial is the best of the stage before: already scored, it costs nothing).
``--tuning-seconds -1`` (the default) scales the budget with the data: ``SECONDS_BASE`` +
``SECONDS_PER_100K`` per 100,000 events of the training window, at most ``SECONDS_CAP``. When the
trials bind (small shops) two runs give the same values; when time binds the search depends on the
machine's speed, and ``stopped_by`` says so.
"""

from training.tuning.budget import BUDGET_RULE, SECONDS_CAP, STAGES, Budget, auto_seconds, budget_of
from training.tuning.choices import ServingChoices, Trial, Tuned
from training.tuning.fallback import with_personal_anchor
from training.tuning.long_tail import off as long_tail_off
from training.tuning.stages import tune

__all__ = [
    "BUDGET_RULE",
    "SECONDS_CAP",
    "STAGES",
    "Budget",
    "ServingChoices",
    "Trial",
    "Tuned",
    "auto_seconds",
    "budget_of",
    "long_tail_off",
    "tune",
    "with_personal_anchor",
]
