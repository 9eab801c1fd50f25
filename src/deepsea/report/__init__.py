"""What a run shows its user: validation evaluations and warnings, the ablation table, the report's figures."""
