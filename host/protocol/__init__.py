"""The serial wire protocol: layout tables (:mod:`.spec`) and the codec."""
