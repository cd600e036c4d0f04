"""archsearch: architecture search and experiment tracking for CNN design questions."""
