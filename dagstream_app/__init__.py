"""dagstream: watch and steer DAG executions live, from Django."""

__version__ = "0.1.0"
