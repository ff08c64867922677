"""Per-title ladders: a cheap constant-quality probe of sampled scenes measures how hard the episode is
(complexity), and the decision turns that into each rung's rate control and drops the rungs that add too
little (decision). Builds on encode/ (its workers, rungs and metrics) and inspect/; encode/ never imports it.
"""
