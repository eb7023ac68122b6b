"""Everything that brings mentions in: sources, the wire format and the Kafka adapter."""
