"""Dataset loaders sharing one contract (:class:`~moodscope.datasets.base.Dataset`)."""
