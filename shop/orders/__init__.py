"""Orders: placement, the order and refund state machines, fulfilment and refunds. Imports core,
identity, catalog and checkout; never payments (it asks for payment work by job name)."""
