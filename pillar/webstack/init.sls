{#- The one topology file. Environments differ by which topology.yaml sits in the pillar roots:
    the lab and the Vagrant master put the chosen topology/*.yaml there (see README, "Pillar"). #}
{%- import_yaml 'topology.yaml' as topology %}
webstack:
  topology: {{ topology | tojson }}
