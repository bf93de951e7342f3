"""The measurement stages of Table I: ``aclnet complexity`` (parameters and MACs, :mod:`.complexity`) and
``aclnet latency`` (ms/image on this CPU, :mod:`.latency`), each of the model chosen the same way
(:mod:`.configured`: ``--model`` or params ``models.<role>``). They build models and read no results."""
