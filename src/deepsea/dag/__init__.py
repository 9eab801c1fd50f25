"""The only layer that knows the Snakemake workflow: output paths, config files and their layering, the model runs
a config defines, cross-key checks, the jobs' commands, GPU slots and the closing summary. The `.smk` files import
from here and nowhere else in the package."""
