/**
 * Container logs in conmon's k8s-file format: parsing records, reading
 * (tail, since/until, follow across rotations) and printing. The parts live
 * in ./logs/; this is their one entry point.
 */
export { parseLogLine, type LogRecord, type LogStream, type LogTime } from './logs/record.ts';
export { parseTimeFilter } from './logs/time-filter.ts';
export { readLogs, type LogEntry, type ReadLogsOptions } from './logs/read.ts';
export { formatEntry, toStreams, writeLogs, type StreamWrite } from './logs/write.ts';
