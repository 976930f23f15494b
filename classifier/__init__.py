"""The intent classifier: one scikit-learn Pipeline, trained on labelled mail, saved with skops."""
