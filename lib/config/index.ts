export * from './schema.ts';
export * from './load.ts';
export * from './setup-error.ts';
export { renderConfigReference, renderConfigDoc, configFieldPaths } from './reference.ts';
export { listSections, renderType, schemaAt, type FieldInfo, type SectionInfo } from './introspect.ts';
