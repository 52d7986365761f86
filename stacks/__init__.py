"""CDK v2 stacks, one per concern, built from small constructs (ids and sizes in constants)."""
