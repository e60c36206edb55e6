"""Multi-label classification (BibTeX, paper section 6.2): PICNN vs feed-forward baseline."""
