"""French SSMSI statistics: raw loads and the annual forecasts."""
