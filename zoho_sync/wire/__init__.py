"""What crosses the wire between our records and Zoho, below the entities and the engine: the sync error tree
(errors), request-body helpers (payloads), the context of a call to Zoho and a lookup by key (remote), and how a
value Zoho sent is read and bounded (inbound). The entity modules build on these; the engine reads them too.
"""
