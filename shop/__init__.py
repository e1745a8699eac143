"""The base every other package stands on: db, money, the commit point, domain errors, events,
the job runner door; members, staff and the catalog."""
