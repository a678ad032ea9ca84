"""The ground floor: the sweep spec's models, its YAML loading, overrides and their errors.

It imports nothing else of sweepctl, and everything may import it. Nothing here imports
torch, transformers or Ray, so checking a spec is fast.
"""
