"""Transport of commands to the organizations' actors over Redis Streams, and of results back."""
