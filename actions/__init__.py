"""rasa-sdk custom actions. Thin by design: retrieval and the answer/clarify/handoff decision
live in ``knowledge_base``; these modules only turn a Decision into bot messages and slots."""
