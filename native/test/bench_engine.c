/* bench_engine.c: prints engine throughput (not a test). */
int main(void) { return 0; }
