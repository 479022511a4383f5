DROP TABLE shipshape.run_events, shipshape.runs;
