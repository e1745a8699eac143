"""Identity: merchants (tenants), their staff and settings and pickup points, members and WeChat
login. Imports only core."""
