"""Entities the memory end-to-end tests remember (importable: ``tests/e2e`` is on sys.path)."""

SALES = {
    "name": "Q3SalesInsight",
    "entity_type": "business_insight",
    "observations": ["Q3 sales increased 23% over Q2", "Mobile channel drove 67% of growth"],
}
ALICE = {
    "name": "Alice",
    "entity_type": "person",
    "observations": ["Alice is the data engineer who maintains the warehouse"],
}
COFFEE = {
    "name": "OfficeCoffee",
    "entity_type": "fact",
    "observations": ["The office coffee machine is on the third floor"],
}
