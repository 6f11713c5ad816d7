"""Pure Plotly figure builders, one module per lesson (arrays in, go.Figure out)."""
