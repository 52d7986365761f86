"""Merchandiser core library: the domain logic shared by the Lambda functions and the training job.

Ships to Lambda as a layer. Nothing here reads environment variables or calls AWS at import time.
"""
