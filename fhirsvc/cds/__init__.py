"""CDS Hooks 2.0.1: discovery, order-select and order-sign services, feedback; the checks give the cards."""
