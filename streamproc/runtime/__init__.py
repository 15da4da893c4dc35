"""The outer ring: the Faust app and agent, Redis and Kafka I/O, topic administration."""
