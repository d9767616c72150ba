// Lint rules, including the layering of src/: each layer may import only from
// the layers below it (see ARCHITECTURE.md). The order, top to bottom:
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const LAYERS = [
  'cli',
  'engine',
  'runtime',
  'network',
  'image',
  'storage',
  'rootless',
  'store',
  'host',
  'config',
  'sys',
  'util',
];

function layerRules() {
  return LAYERS.map((layer, i) => {
    const above = LAYERS.slice(0, i);
    return {
      files: [`src/${layer}/**/*.ts`],
      rules: {
        'no-restricted-imports': [
          'error',
          {
            patterns: above.map((upper) => ({
              group: [`**/${upper}/*`, `**/${upper}/**`],
              message: `src/${layer} sits below src/${upper}: imports point downward only (ARCHITECTURE.md).`,
            })),
          },
        ],
      },
    };
  });
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/build/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        AbortController: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        fetch: 'readonly',
        performance: 'readonly',
        structuredClone: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      // With noUncheckedIndexedAccess, `argv[i]!` inside a bounds-checked loop says what the reader knows.
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  ...layerRules(),
);
