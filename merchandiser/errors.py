"""Domain errors that the API maps to 4xx (see ``api.make_resolver``)."""


class UnknownItemError(LookupError):
    """An item id the catalogue does not hold."""


class BadRequestError(ValueError):
    """The request is well-formed but asks for something that cannot be done."""
