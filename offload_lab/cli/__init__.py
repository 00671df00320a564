"""The command line on top: what each fab task does, the help of its options, and fab's program
(fabfile.py only forwards here)."""
