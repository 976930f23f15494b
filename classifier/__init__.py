"""The intent classifier: one scikit-learn Pipeline, trained on labelled mail; the daemon runs
its arrays with numpy alone (linear.py), saved in a file that cannot run code (persist.py)."""
