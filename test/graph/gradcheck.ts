// The finite-difference gradient checker lives in lib/graph (the import report uses it too).
export * from '../../lib/graph/gradcheck.ts';
