"""How the Lambda layers are built: dependencies from wheels, the core library, the model."""
