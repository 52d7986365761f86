"""The shopper simulator's parts: ground truth (truth), behaviour (shoppers), the HTTP client (client),
the browsing loop (browsing) and its exact counts (results); ``local_twin.simulator`` runs them."""
