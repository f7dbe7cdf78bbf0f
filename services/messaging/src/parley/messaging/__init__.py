"""The messaging service: FIPA-ACL messages between agents, routed, recorded, delivered."""
