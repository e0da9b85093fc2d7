"""The check catalogue, one module per spec area; each check quotes the requirement it judges."""
